"""The simulated board: a line controller emulator spoken to over a pty (STYLE §2.9)."""
