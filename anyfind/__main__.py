from anyfind.cli import main

main()
