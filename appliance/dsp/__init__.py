"""Media signal processing core: G.711, tones, DTMF (numpy frames, no I/O)."""
