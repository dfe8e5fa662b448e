import { fireEvent, screen } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import type { Search, SearchList } from '../src/api/types';
import { HistoryScreen } from '../src/screens/HistoryScreen';
import { fakeClient, renderWith } from '../test-utils/app';
import { calibrated, storedBeforeMinConfidence } from '../test-utils/decisions';
import { body } from '../test-utils/http';

const page = body<SearchList>('searches_200');
const stored = body<{ search: Search }>('search_200').search;

test('past searches newest first; one reopens its results', async () => {
  const client = fakeClient();
  client.listSearches.mockResolvedValue(page);
  client.getSearch.mockResolvedValue(stored);
  await renderWith(client, <HistoryScreen />);
  expect(await screen.findByText('No reliable match')).toBeTruthy();
  const items = screen.getAllByTestId(/^history-/);
  expect(items.map((i) => i.props.testID)).toEqual(page.searches.map((s) => `history-${s.id}`));
  // the recorded answers have no search calibration: the best similarity passed the threshold
  expect(page.searches[1].result.min_confidence).toBeNull();
  expect(screen.getByText(`Possible match: ${page.searches[1].result.matches[0].name}`)).toBeTruthy();
  expect(client.listSearches).toHaveBeenCalledWith(0, 20);

  await fireEvent.press(screen.getByTestId(`history-${stored.id}`));
  expect(client.getSearch).toHaveBeenCalledWith(stored.id);
  expect(await screen.findByText(`1. ${stored.result.matches[0].name}`)).toBeTruthy();
  await fireEvent.press(screen.getByRole('button', { name: 'Back to history' }));
  expect(await screen.findByText('History')).toBeTruthy();
});

test('more pages load on demand and are appended', async () => {
  const client = fakeClient();
  const first = { ...page, total: 3 };
  const older = { ...page.searches[1], id: 'f'.repeat(32) };
  client.listSearches.mockResolvedValueOnce(first).mockResolvedValueOnce({ ...page, offset: 2, total: 3, searches: [older] });
  await renderWith(client, <HistoryScreen />);
  await fireEvent.press(await screen.findByRole('button', { name: 'Load more' }));
  expect(client.listSearches).toHaveBeenLastCalledWith(2, 20);
  expect(await screen.findByTestId(`history-${older.id}`)).toBeTruthy();
  expect(screen.getAllByTestId(/^history-/)).toHaveLength(3);
  expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
});

test('empty history', async () => {
  const client = fakeClient();
  client.listSearches.mockResolvedValue({ searches: [], total: 0, offset: 0, limit: 20 });
  await renderWith(client, <HistoryScreen />);
  expect(await screen.findByText('No searches yet.')).toBeTruthy();
});

test('a failed load explains and retries', async () => {
  const client = fakeClient();
  client.listSearches.mockRejectedValueOnce(new ApiError('unauthorized', 'bad key', 401)).mockResolvedValueOnce(page);
  await renderWith(client, <HistoryScreen />);
  expect(await screen.findByText('The API key was refused')).toBeTruthy();
  await fireEvent.press(screen.getByRole('button', { name: 'Refresh the history' }));
  expect(await screen.findByText('No reliable match')).toBeTruthy();
  expect(screen.queryByText('The API key was refused')).toBeNull();
});

/** A stored search with the result of a calibrated /v1/match answer. */
function storedCalibrated(id: string, confidences: number[], name: string): Search {
  const { matches, no_match, min_confidence, threshold } = calibrated(confidences, { name });
  return { ...stored, id, result: { ...stored.result, matches, no_match, min_confidence, threshold } };
}

test('each line is worded like its results: likely, possible, no reliable match', async () => {
  const searches = [
    storedCalibrated('a'.repeat(32), [0.97, 0.2], 'Jane Doe'),
    storedCalibrated('b'.repeat(32), [0.7, 0.2], 'John Roe'),
    storedCalibrated('c'.repeat(32), [0.3, 0.2], 'Jane Doe'), // the reported case
    ...storedBeforeMinConfidence().searches, // stored before min_confidence: no_match, then a match
  ];
  const client = fakeClient();
  client.listSearches.mockResolvedValue({ ...page, total: searches.length, searches });
  await renderWith(client, <HistoryScreen />);
  const line = (i: number) => screen.getByTestId(`history-${searches[i].id}`);
  expect(await screen.findByText('Likely the person: Jane Doe')).toBeTruthy();
  expect(line(0)).toHaveTextContent(/^Likely the person: Jane Doe/);
  expect(line(1)).toHaveTextContent(/^Possible match: John Roe/);
  expect(line(2)).toHaveTextContent(/^No reliable match/);
  expect(line(2)).not.toHaveTextContent(/Jane Doe|Possible/);
  expect(line(2).props.accessibilityLabel).toMatch(/^No reliable match, /);
  expect(line(3)).toHaveTextContent(/^No reliable match/);
  // its old pair probability (0.95) would have made it "Likely"; only the similarity threshold decides now
  expect(line(4)).toHaveTextContent(new RegExp(`^Possible match: ${searches[4].result.matches[0].name}`));
  expect(line(4).props.accessibilityLabel).toMatch(/^Possible match: /);
});
