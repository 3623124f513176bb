"""What browser tests wait for on htmx pages (the browser itself is the root conftest's fixture)."""

# htmx 2 puts swapped-in content in the page at once but wires its hx-* attributes (and fires htmx:load) only when the
# swap settles, 20 ms later; until then the new elements carry htmx-added and the swap's target htmx-settling. A test
# that typed into, picked in or clicked such content in between was not heard: the layer form's check never came (the
# editor's browser test waited 240 s), a Run button did nothing, an engine change redrew nothing. A person cannot act
# within those milliseconds; a browser driven by a test can. Content inside an element whose request is still out
# (htmx-request) is about to be replaced by its answer: typing into it is lost too.
SETTLED = (":not(.htmx-added, .htmx-added *, .htmx-settling, .htmx-settling *, .htmx-request, .htmx-request *)")


def settled(locator, timeout: float | None = None):
    """`locator`'s element once it is in the page, htmx has processed it and no request around it awaits its answer;
    returned, to act on.

    Give it something only the new content has (an input of the form just loaded, the option a redraw marks
    selected): the content a swap replaces was settled long ago, unless its own request is still out."""
    locator.and_(locator.page.locator(SETTLED)).wait_for(state="attached", timeout=timeout)
    return locator
