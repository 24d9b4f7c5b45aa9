from ftreg.cli import main

main()
