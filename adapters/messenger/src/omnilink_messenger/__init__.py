"""Facebook Messenger for omnilink: several pages, signed webhooks, the messaging window.

```python
from omnilink import Hub, MemoryStore
hub = Hub(store=MemoryStore(), channels={"messenger": {
    "app_secret": "...", "verify_token": "...",
    "pages": [{"page_id": "1234", "access_token": "...", "human_agent_enabled": True}],
}})
```
"""

from ._channel import CAPABILITIES, MessengerChannel
from ._config import MessengerConfig, MessengerPage
from ._parse import parse_payload
from ._signature import sign, verify_signature

__all__ = [
    "CAPABILITIES",
    "MessengerChannel",
    "MessengerConfig",
    "MessengerPage",
    "parse_payload",
    "sign",
    "verify_signature",
]
