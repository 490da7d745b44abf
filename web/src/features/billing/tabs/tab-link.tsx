/**
 * A link to another tab of the Billing page (and optionally a section in it): a real link
 * (`?tab=plans`, open in a new tab works), which in place pushes the address and lets
 * useTabInUrl pick it up through popstate, as Back and Forward do, then brings the section
 * into view once the tab has rendered it.
 */
import type { MouseEvent, ReactNode } from "react";
import { urlForTab, type BillingTabId } from "./tab-location";

/** Scrolls to and focuses the element with `id`, once it exists (a lazy tab renders it a moment later). */
export function revealSection(id: string, attempts = 20): void {
  // A retry can outlive the page it was scheduled for (a test's document torn down meanwhile).
  if (typeof document === "undefined") return;
  const element = document.getElementById(id);
  if (element) {
    element.scrollIntoView?.({ block: "start" });
    if (!element.hasAttribute("tabindex")) element.setAttribute("tabindex", "-1");
    element.focus({ preventScroll: true });
    keepInView(element);
    return;
  }
  if (attempts > 0) window.setTimeout(() => revealSection(id, attempts - 1), 100);
}

/**
 * The sections above the element are still loading when it appears (skeletons, then figures),
 * and a page too short to scroll that far leaves the browser no scroll anchor: the element
 * would end up below the fold (seen at 390 px). So it is scrolled back to while the page
 * settles, for `settleMs` or until the person scrolls, taps or types, whichever comes first.
 */
function keepInView(element: HTMLElement, settleMs = 3_000): void {
  if (typeof ResizeObserver === "undefined") return;
  const observer = new ResizeObserver(() => element.scrollIntoView({ block: "start" }));
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

export function TabLink({ tab, section, className = "button", children }: { tab: BillingTabId; section?: string; className?: string; children: ReactNode }) {
  const href = `${urlForTab(window.location.pathname, window.location.search, tab)}${section ? `#${section}` : ""}`;
  function onClick(event: MouseEvent<HTMLAnchorElement>) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (`${window.location.pathname}${window.location.search}${window.location.hash}` !== href) window.history.pushState(null, "", href);
    window.dispatchEvent(new PopStateEvent("popstate"));
    if (section) revealSection(section);
  }
  return (
    <a href={href} className={className} onClick={onClick}>
      {children}
    </a>
  );
}
