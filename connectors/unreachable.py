"""Tell the app when a platform says a user can no longer be reached (blocked the bot, left)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Optional

import aiohttp

logger = logging.getLogger(__name__)

REPORT_PATH = "/internal/identities/unreachable"


class UnreachableReporter:
    """POSTs {"platform", "external_id"} to the app, so proactive delivery stops trying.

    A report that cannot be delivered is logged and dropped: the next failed send reports
    again, and the conversation must never fail because the app is down.
    """

    def __init__(self, app_url: str, api_key: str, timeout: float = 5.0) -> None:
        self.url = app_url.rstrip("/") + REPORT_PATH if app_url else ""
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    @classmethod
    def from_env(cls) -> "UnreachableReporter":
        return cls(
            os.environ.get("HERALD_APP_URL", ""), os.environ.get("HERALD_INTERNAL_API_KEY", "")
        )

    async def report(self, platform: str, external_id: str) -> bool:
        """True if the app recorded it."""
        if not self.url or not self._api_key:
            logger.warning(
                "cannot report an unreachable %s user: HERALD_APP_URL or "
                "HERALD_INTERNAL_API_KEY is not set",
                platform,
            )
            return False
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.url,
                json={"platform": platform, "external_id": external_id},
                headers={"Authorization": f"Bearer {self._api_key}"},
            ) as reply:
                if reply.status >= 300:
                    logger.warning(
                        "the app answered %s to an unreachable-%s report", reply.status, platform
                    )
                    return False
        # asyncio.TimeoutError is not the builtin one on Python 3.10 (Rasa's runtime).
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            logger.warning("could not report an unreachable %s user: %s", platform, error)
            return False
        logger.info("reported an unreachable %s user to the app", platform)
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
