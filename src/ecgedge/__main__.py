from ecgedge.cli import main

main()
