"""What the row checks' fork server loads before it forks them (imports/row_checks.py).

Imported by that server only, as its preload: importing this module is the loading. The server
is a fresh interpreter the service starts on its first long import; it loads what checking needs
(pinyin's tables, the numbering plan, the checks themselves) once, and each check process is a
fork of it, sharing those pages instead of loading them again (about half a cpu-second a
process). It stays until the service exits, so a later import forks its processes without
loading anything.
"""

import gc
import os
import signal

from customer_service.imports.row_checks import NICENESS

# Ctrl-C at a terminal reaches the whole group: the service stops the checks itself (the server
# ignores it too once loaded; not yet while loading).
signal.signal(signal.SIGINT, signal.SIG_IGN)
# Loaded behind the service, which reads its sheet meanwhile; the checks fork at this priority.
os.nice(NICENESS)
# What is loaded now lives as long as the processes, so the collector has nothing to find in it:
# paused, it does not walk the hundreds of thousands of objects pinyin's dictionaries are read
# into again and again as they grow (a sixth of a start).
gc.disable()
try:
    from customer_service.customers import phones, pinyin
    from customer_service.imports import customer_checks  # noqa: F401 - loaded now

    pinyin.name_search_keys("王芳")
    phones.parse_phone("138 1234 5678")
finally:
    gc.enable()
# Nor need it walk all that each time a chunk's thousands of new objects set it off (an eighth
# of the checks' time): frozen here, frozen in every fork.
gc.freeze()
