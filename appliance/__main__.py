"""`python -m appliance` runs the `yakyak` command line."""

from appliance.cli import main

raise SystemExit(main())
