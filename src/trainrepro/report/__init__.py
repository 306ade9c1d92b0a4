"""Tables (Markdown/CSV/LaTeX), claim verdicts and figures, from run records and paper data."""
