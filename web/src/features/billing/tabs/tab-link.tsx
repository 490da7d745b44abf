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
  const element = document.getElementById(id);
  if (element) {
    element.scrollIntoView?.({ block: "start" });
    if (!element.hasAttribute("tabindex")) element.setAttribute("tabindex", "-1");
    element.focus({ preventScroll: true });
    return;
  }
  if (attempts > 0) window.setTimeout(() => revealSection(id, attempts - 1), 100);
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
