import { fireEvent, screen } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import type { Search, SearchList } from '../src/api/types';
import { HistoryScreen } from '../src/screens/HistoryScreen';
import { fakeClient, renderWith } from '../test-utils/app';
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
  expect(screen.getByText(`Best match: ${page.searches[1].result.matches[0].name}`)).toBeTruthy();
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
