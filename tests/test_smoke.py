from __future__ import annotations

import httpx


async def test_publish_then_poll(client: httpx.AsyncClient) -> None:
    published = await client.post("/alerts", content=b"hello", headers={"Title": "t"})
    assert published.status_code == 200
    polled = await client.get("/alerts/json", params={"poll": "1"})
    assert polled.status_code == 200
    lines = polled.text.splitlines()
    assert len(lines) == 1
    assert '"message":"hello"' in lines[0]
    assert published.headers["x-request-id"]
