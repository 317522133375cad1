from fiml.cli import main

main()
