"""SMS providers behind one interface (base.py); ``CRM_SMS_PROVIDER`` picks one (registry.py)."""
