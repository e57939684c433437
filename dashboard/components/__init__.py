"""Reusable pieces of the dashboard: words (labels), charts (Altair) and layout widgets."""
