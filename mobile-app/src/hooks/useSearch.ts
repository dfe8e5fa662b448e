import { useCallback, useEffect, useRef, useState } from 'react';

import { fromMatch, type PhotoFile, type Results } from '../api/types';
import { useClient } from './ClientContext';

export type SearchState =
  | { status: 'idle' }
  | { status: 'uploading'; progress: number }
  | { status: 'done'; result: Results }
  | { status: 'error'; error: unknown };

/** One search at a time: upload with progress, cancel, retry the last photo. */
export function useSearch() {
  const client = useClient();
  const [state, setState] = useState<SearchState>({ status: 'idle' });
  const controller = useRef<AbortController | null>(null);
  const last = useRef<{ photo: PhotoFile; k: number } | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const run = useCallback(
    async (photo: PhotoFile, k: number) => {
      controller.current?.abort();
      const current = new AbortController();
      controller.current = current;
      last.current = { photo, k };
      setState({ status: 'uploading', progress: 0 });
      try {
        const response = await client().match(photo, k, {
          signal: current.signal,
          onProgress: (progress) => {
            if (controller.current === current) setState({ status: 'uploading', progress });
          },
        });
        if (controller.current === current) setState({ status: 'done', result: fromMatch(response) });
      } catch (error) {
        if (controller.current === current) setState({ status: 'error', error });
      }
    },
    [client],
  );

  const cancel = useCallback(() => controller.current?.abort(), []);
  const retry = useCallback(() => {
    if (last.current) void run(last.current.photo, last.current.k);
  }, [run]);
  const reset = useCallback(() => {
    controller.current?.abort();
    controller.current = null;
    setState({ status: 'idle' });
  }, []);

  return { state, run, cancel, retry, reset };
}
