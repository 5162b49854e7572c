"""Readers and validation for users' data files (spend today; journeys, CRM snapshots and
aggregate counts as fitting arrives)."""
