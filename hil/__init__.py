"""Hardware-in-the-loop rig: scenarios that drive the phone side of each analog port
and check what the appliance does; against the sim board in CI, a real board on a bench."""
