import { useCallback, useState } from 'react';

import type { Search } from '../api/types';
import { useClient } from './ClientContext';

const PAGE = 20;

/** The caller's past searches, newest first, a page at a time. */
export function useHistory() {
  const client = useClient();
  const [items, setItems] = useState<Search[]>([]);
  const [next, setNext] = useState<number | null>(0);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(
    async (offset: number) => {
      setLoading(true);
      setError(null);
      try {
        const page = await client().listSearches(offset, PAGE);
        setItems((before) => (offset === 0 ? page.searches : [...before, ...page.searches]));
        const end = page.offset + page.searches.length;
        setNext(page.searches.length > 0 && end < page.total ? end : null);
      } catch (e) {
        setError(e);
      } finally {
        setLoading(false);
      }
    },
    [client],
  );

  const refresh = useCallback(() => load(0), [load]);
  const loadMore = useCallback(() => {
    if (next !== null && !loading) void load(next);
  }, [load, next, loading]);

  return { items, loading, error, refresh, loadMore, hasMore: next !== null };
}
