import { useCallback, useEffect, useState } from 'react';

import { fromSearch, type Results } from '../api/types';
import { useClient } from './ClientContext';

/** A stored search reopened from history. */
export function useSearchDetail(searchId: string) {
  const client = useClient();
  const [result, setResult] = useState<Results | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setResult(fromSearch(await client().getSearch(searchId)));
    } catch (e) {
      setError(e);
    }
  }, [client, searchId]);

  useEffect(() => {
    void load();
  }, [load]);

  return { result, error, retry: load };
}
