"""HIL scenarios: each drives the phone side of a port and checks the appliance."""
