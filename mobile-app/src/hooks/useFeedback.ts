import { useCallback, useState } from 'react';

import type { StoredFeedback } from '../api/types';
import { useClient } from './ClientContext';

export type FeedbackStatus =
  | { state: 'sending'; correct: boolean }
  | { state: 'sent'; correct: boolean }
  | { state: 'error'; correct: boolean; error: unknown };

function initialState(stored: StoredFeedback[]): Record<string, FeedbackStatus> {
  const out: Record<string, FeedbackStatus> = {};
  // oldest first, so the latest feedback on a person wins
  for (const item of [...stored].sort((a, b) => a.created_at - b.created_at)) {
    out[item.person_id] = { state: 'sent', correct: item.correct };
  }
  return out;
}

/** Per-person feedback ("correct" / "not this person") on one search, starting from what was stored. */
export function useFeedback(searchId: string, stored: StoredFeedback[] = []) {
  const client = useClient();
  const [byPerson, setByPerson] = useState<Record<string, FeedbackStatus>>(() => initialState(stored));

  const send = useCallback(
    async (personId: string, correct: boolean) => {
      setByPerson((s) => ({ ...s, [personId]: { state: 'sending', correct } }));
      try {
        await client().sendFeedback(searchId, { person_id: personId, correct });
        setByPerson((s) => ({ ...s, [personId]: { state: 'sent', correct } }));
      } catch (error) {
        setByPerson((s) => ({ ...s, [personId]: { state: 'error', correct, error } }));
      }
    },
    [client, searchId],
  );

  return { byPerson, send };
}
