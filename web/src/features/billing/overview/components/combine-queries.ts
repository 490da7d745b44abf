import type { QueryLike } from "@/components/status";

/**
 * Several reads as one for a card that needs them all (QueryView): figures once every read
 * has some, an error when any read fails (so the card is marked not current while kept), the
 * oldest update time, and a retry of them all.
 */
export function combineQueries<T extends unknown[]>(queries: { [K in keyof T]: QueryLike<T[K]> }): QueryLike<T> {
  const list = queries as readonly QueryLike<unknown>[];
  const complete = list.every((query) => query.data !== undefined);
  const failed = list.find((query) => query.isError);
  return {
    data: complete ? (list.map((query) => query.data) as T) : undefined,
    error: failed?.error ?? null,
    isError: failed !== undefined,
    dataUpdatedAt: Math.min(...list.map((query) => query.dataUpdatedAt)),
    refetch: () => Promise.all(list.map((query) => query.refetch())),
  };
}
