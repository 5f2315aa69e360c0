"""python -m receiver.writer: the SQLite writer process (main.py)."""

import sys

# The imported module's main, never a __main__ copy of it: the jobs the workers pickle are instances of the
# receiver's own classes, and the writer must unpickle them as those.
from receiver.writer.main import main

sys.exit(main())
