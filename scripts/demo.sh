#!/usr/bin/env bash
# The main job on the embedded defaults: index the bundled sample corpus and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
AF=".venv/bin/anyfind"
INDEX=${DEMO_INDEX:-./.anyfind-demo}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$AF" index examples/corpus --index "$INDEX"
for q in "how long should sourdough proof" "largest planet in the solar system" \
         "retry a network call with backoff" "a cup of espresso" \
         "shopping for sourdough on Saturday"; do
  echo
  echo "\$ anyfind search \"$q\" -k 3"
  "$AF" search "$q" --index "$INDEX" -k 3
done
echo
echo "\$ anyfind search --image examples/corpus/photos/rocket.jpg -k 2"
"$AF" search --image examples/corpus/photos/rocket.jpg --index "$INDEX" -k 2
echo
"$AF" status --index "$INDEX"
