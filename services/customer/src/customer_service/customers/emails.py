"""An email address as a file keeps it (the write schema's rule, in a module of its own so that an
import's row checks read a sheet's addresses without loading the schema's models)."""

import re

# One @, a dotted domain, no spaces: what a mailbox needs to be written to. Deliverability is
# not the file's business (no DNS look-up on a write).
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def check_email(value: str) -> str:
    """The address trimmed, its domain lower-cased; ValueError if it is not one."""
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not an email address (name@example.com)")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"
