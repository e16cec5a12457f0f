"""Streamlit dashboard for the image compression pipeline (entry point: ``dashboard/app.py``)."""
