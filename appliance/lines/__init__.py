"""Analog lines (sans-IO): the line controller's protocol, FXS and FXO port logic."""
