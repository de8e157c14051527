"""Hardware edge: board definitions, the controller serial link, audio PCMs (STYLE §2.9)."""
