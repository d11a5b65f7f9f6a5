"""Views: plans and results as text and JSON, the HTML report."""
