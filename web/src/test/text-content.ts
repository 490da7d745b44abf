/**
 * Matches the one element whose whole text (visually hidden words included) is `text`,
 * for figures written as "<hidden label> <visible value>", which Testing Library's default
 * matcher (an element's own text nodes only) cannot see as one string.
 */
export function textContent(text: string) {
  return (_content: string, element: Element | null): boolean =>
    element?.textContent === text && ![...element.children].some((child) => child.textContent === text);
}
