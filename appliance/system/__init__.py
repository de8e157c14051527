"""Operating-system edges: systemd notification and log destinations."""
