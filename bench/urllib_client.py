"""Benchmark (a), the Python contender: N sequential urllib.request GETs of one small page,
each decoded with json. The first request is not timed, as in the other clients.

    python3 bench/urllib_client.py URL PHONE PAGE_SIZE API_KEY N   -> prints seconds
"""
import json
import sys
import time
import urllib.parse
import urllib.request

url, phone, page_size, api_key, n = sys.argv[1:6]
full = url + "/api/v1/calling/phone-history?" + urllib.parse.urlencode(
    {"phone": phone, "page_size": page_size})
req = urllib.request.Request(full, headers={"X-Api-Key": api_key, "Accept": "application/json"})


def request():
    with urllib.request.urlopen(req) as resp:
        json.loads(resp.read())


request()
t0 = time.monotonic()
for _ in range(int(n)):
    request()
print("%.6f" % (time.monotonic() - t0))
