from lwdock.cli import main

main()
