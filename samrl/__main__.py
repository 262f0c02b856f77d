from samrl.cli import main

main()
