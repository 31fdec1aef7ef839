"""A fake OSV vulnerability API (POST /v1/query, the shape pip-audit's `-s osv` reads): the
advisories a test declares, for the package and version it names; none for anything else."""

from __future__ import annotations

import json

from tests.support.fakes.server import FakeServer, Recorded, Reply


class FakeOsv(FakeServer):
    name = "osv"

    def __init__(self) -> None:
        self.advisories: dict[tuple[str, str], list[dict]] = {}
        super().__init__()

    def setup_routes(self) -> None:
        self.route("POST", r"/v1/query", self._query)

    def advise(self, package: str, version: str, advisory_id: str, *, fixed: str) -> None:
        """`package` at `version` is affected by `advisory_id` until `fixed`."""
        self.advisories.setdefault((package, version), []).append(
            {
                "id": advisory_id,
                "summary": f"A test advisory against {package} {version}",
                "affected": [
                    {
                        "package": {"name": package, "ecosystem": "PyPI"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                    }
                ],
            }
        )

    def _query(self, request: Recorded, match) -> Reply:
        query = json.loads(request.body)
        vulns = self.advisories.get((query["package"]["name"], query["version"]), [])
        return Reply(200, {"vulns": vulns} if vulns else {})
