"""The LAN web UI and REST API (issue 7): a Bottle app served over HTTPS by cheroot."""
