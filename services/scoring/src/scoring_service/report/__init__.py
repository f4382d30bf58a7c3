"""The manager's monthly report: one self-contained HTML page of server-drawn SVG charts."""
