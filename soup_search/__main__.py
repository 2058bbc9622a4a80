from soup_search.cli import main

main()
