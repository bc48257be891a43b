"""`python -m meshkit`: the same as the `meshkit` command."""

from meshkit.cli.app import main

if __name__ == "__main__":
    main()
