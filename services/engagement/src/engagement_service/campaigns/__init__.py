"""Campaigns: one template sent to a store's customers chosen by the calendar or a segment."""
