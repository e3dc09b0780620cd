from emofuse.cli import main

main()
