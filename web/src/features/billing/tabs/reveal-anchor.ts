/**
 * Scrolls to and focuses the element with `id` once it is on the page: a link into another
 * tab (the Overview's "Spend expiring credits first" to the Credits tab's spending order)
 * lands before that lazily loaded tab has rendered. Gives up after `timeoutMs`.
 */
export function revealWhenShown(id: string, timeoutMs = 10_000): () => void {
  const deadline = Date.now() + timeoutMs;
  let frame = 0;
  const look = () => {
    const element = document.getElementById(id);
    if (element) {
      element.scrollIntoView({ block: "start" });
      // Focus only moves to what can take it; a heading or section gets tabindex -1 from its owner.
      element.focus({ preventScroll: true });
      return;
    }
    if (Date.now() < deadline) frame = window.setTimeout(look, 100);
  };
  look();
  return () => window.clearTimeout(frame);
}
