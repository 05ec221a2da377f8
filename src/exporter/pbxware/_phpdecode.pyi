# The C decoder (_phpdecode.c), built by setup.py where a compiler is there.
from typing import Any

def loads(data: bytes, /) -> Any: ...
