/**
 * Where a banner's action lands on the Credits tab: the heading of the section that does it.
 * The ids are the Credits tab's own headings (credits/components/credits-tab.tsx); the Billing
 * page test follows each action to its heading, so a renamed id fails there.
 */
export const CREDITS_SECTION_HEADINGS = {
  packs: "cr-packs",
  autoTopUp: "cr-auto-top-up",
  spendLimit: "cr-spend-limit",
} as const;

export type CreditsSection = keyof typeof CREDITS_SECTION_HEADINGS;

/**
 * Scrolls to the section's heading and moves focus there once it is on the page (the Credits
 * tab is a lazy chunk, so it may take a moment), so keyboard and screen reader users land
 * where the action is, not at the top of the tab. Gives up after `timeoutMs`.
 */
export function revealSection(section: CreditsSection, timeoutMs = 10_000): () => void {
  const id = CREDITS_SECTION_HEADINGS[section];
  const reveal = (heading: HTMLElement) => {
    heading.scrollIntoView?.({ block: "start" });
    // A heading is not focusable by default; -1 makes it a focus target without a tab stop.
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    keepInView(heading);
  };
  const present = document.getElementById(id);
  if (present) {
    reveal(present);
    return () => undefined;
  }
  const observer = new MutationObserver(() => {
    const heading = document.getElementById(id);
    if (!heading) return;
    stop();
    reveal(heading);
  });
  const timer = window.setTimeout(() => stop(), timeoutMs);
  function stop() {
    observer.disconnect();
    window.clearTimeout(timer);
  }
  observer.observe(document.body, { childList: true, subtree: true });
  return stop;
}

/**
 * The sections above the heading are still loading when it appears (skeletons, then figures),
 * and a page too short to scroll that far leaves the browser nothing to anchor to: the heading
 * would end up below the fold. So it is scrolled back to while the page settles, for
 * `settleMs` or until the person scrolls or types, whichever comes first.
 */
function keepInView(heading: HTMLElement, settleMs = 3_000): void {
  if (typeof ResizeObserver === "undefined") return;
  const observer = new ResizeObserver(() => heading.scrollIntoView({ block: "start" }));
  const personActs = ["wheel", "touchstart", "keydown", "pointerdown"] as const;
  const stop = () => {
    observer.disconnect();
    window.clearTimeout(timer);
    for (const event of personActs) window.removeEventListener(event, stop);
  };
  const timer = window.setTimeout(stop, settleMs);
  for (const event of personActs) window.addEventListener(event, stop, { passive: true });
  observer.observe(document.body);
}
