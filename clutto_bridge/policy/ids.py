"""Matrix identifier grammar, shared by config validation and user input checks."""

import re

# Historical user IDs allow more, but new ones (and all we accept as input) use this set.
USER_ID = re.compile(r"@([a-z0-9._=\-/+]+):([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?")
