"""What both services' contract checks share: finding the OpenAPI path template of a concrete path."""


def path_template(spec: dict, path: str) -> str | None:
    """The template of `spec` that `path` (a query string allowed) belongs to; None: not in the document."""
    path = path.split("?")[0]
    if path in spec["paths"]:
        return path
    for template in spec["paths"]:
        parts, concrete = template.split("/"), path.split("/")
        if len(parts) == len(concrete) and all(
            p == c or (p.startswith("{") and c) for p, c in zip(parts, concrete, strict=True)
        ):
            return template
    return None
