"""Git sources on real repositories made with `git`: two commits with an edit, a rename,
a deletion and an addition; a remote clone; a missing ref; commit messages."""

from __future__ import annotations

import pytest
from connector_helpers import git, names, write

from anyfind import Index

FIRST = {
    "README.md": "# Garden\n\nTomatoes need eight hours of direct sunlight and deep watering.",
    "docs/moon.txt": "The Moon drifts away from the Earth by 3.8 centimetres every year.",
    "src/fib.py": "def fib(n):\n    \"\"\"Fibonacci numbers, recursively.\"\"\"\n"
                  "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "notes/old.md": "Minutes of the parking committee: the car park closes at nine.",
}


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, FIRST)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Plant the first seeds")
    git(root, "tag", "v1")
    return root


def second_commit(root):
    (root / "docs/moon.txt").write_text(
        "Saturn has more than one hundred moons; Titan has a thick orange atmosphere.")
    git(root, "mv", "src/fib.py", "src/fibonacci.py")
    git(root, "rm", "-q", "notes/old.md")
    write(root, {"docs/espresso.md": "Nine bars of pressure push hot water through the "
                                     "coffee puck in twenty-eight seconds."})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Replace the lunar notes with a Saturn fact")
    return git(root, "rev-parse", "HEAD")


def test_git_sync_follows_new_commits(index, repo):
    index.add_source("repo", str(repo), ref="main")
    first = index.sync()
    assert (first.added, first.failed, first.failed_sources) == (4, 0, [])
    assert names(index.search("how long do tomatoes need sun", k=1)) == ["README.md"]
    hit = index.search("lunar recession centimetres per year", k=1)[0]
    assert hit.source == "repo" and hit.uri == f"git+file://{repo}@main:docs/moon.txt"

    head = second_commit(repo)
    second = index.sync(["repo"])
    assert (second.added, second.updated, second.renamed, second.removed, second.unchanged) == (
        1, 1, 1, 1, 1)
    assert second.chunks == 2  # the edited file and the new one; the rename re-embeds nothing
    assert names(index.search("Titan orange atmosphere", k=1)) == ["moon.txt"]
    assert names(index.search("recursive fibonacci", k=1)) == ["fibonacci.py"]
    assert "old.md" not in names(index.search("parking committee", k=10))
    assert index.item(index.search("espresso pressure", k=1)[0].item_id)["meta"]["commit"] == head
    assert index.sources()[0]["state"]["commit"] == head

    again = index.sync()
    assert (again.added, again.updated, again.removed, again.chunks) == (0, 0, 0, 0)


def test_git_tag_and_remote_clone(tmp_path, repo):
    second_commit(repo)
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    with Index.open(tmp_path / "idx") as idx:
        src = idx.add_source("old", f"git+file://{bare}", ref="v1")
        assert src["kind"] == "git"
        report = idx.sync()
        assert report.added == 4 and not report.failed_sources
        # at tag v1 the file still speaks of the Moon, not of Saturn
        top = idx.search("Moon drifting from Earth", k=1)[0]
        assert "3.8 centimetres" in top.text
        assert (tmp_path / "idx" / "cache").is_dir()  # the clone lives in the index


def test_missing_ref_is_a_source_error_and_keeps_items(index, repo):
    index.add_source("repo", str(repo), ref="main")
    index.sync()
    index.add_source("repo", str(repo), ref="no-such-branch", replace=True)
    index.add_source("other", str(repo), ref="v1")
    report = index.sync()
    assert report.failed_sources == ["repo"]
    assert "no-such-branch" in report.errors[0]["error"]
    assert report.added == 4  # the other source synced
    repo_items = [s["items"] for s in index.sources() if s["name"] == "repo"]
    assert repo_items == [4]  # nothing already indexed was lost
    assert index.sources()[1]["state"]["last_error"]


def test_commit_messages_submodule_and_lfs_pointer(index, repo):
    lfs = ("version https://git-lfs.github.com/spec/v1\n"
           "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
           "size 12345\n")
    write(repo, {"assets/video.mp4": lfs})
    blob = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{blob},vendor/lib")
    git(repo, "add", "assets")
    git(repo, "commit", "-q", "-m", "Add the launch video and vendor the orbital library")
    index.add_source("repo", str(repo), commits=True)
    report = index.sync()
    assert report.failed_sources == [] and report.failed == 0
    assert report.added == 4 + 1 + 2  # files + the LFS pointer + two commit messages
    hit = index.search("launch video and orbital library vendored", k=1)[0]
    assert hit.path.endswith("(commit)") and "Author: Ada" in hit.text
    pointer = [r for r in index.search("git lfs pointer oid sha256", k=10)
               if r.path.endswith("video.mp4")]
    assert pointer and pointer[0].media_type == "text/plain"
