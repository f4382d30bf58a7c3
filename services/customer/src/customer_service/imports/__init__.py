"""Spreadsheet imports (POST /imports): reading CSV and XLSX uploads into typed rows."""
