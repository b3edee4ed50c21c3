from dashboards.pages._core import Ctx, Page


def build(ctx: Ctx) -> Page:
    return Page("cost", "Cost", "Cost", "")
