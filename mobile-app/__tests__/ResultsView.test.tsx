import { act, fireEvent, screen } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import { CONFIDENCE_WORDS, confidenceLevel } from '../src/api/messages';
import { fromMatch, fromSearch, type MatchResponse, type Search } from '../src/api/types';
import { ResultsView } from '../src/screens/ResultsView';
import { deferred, fakeClient, renderWith } from '../test-utils/app';
import { body } from '../test-utils/http';

const match = fromMatch(body<MatchResponse>('match_200'));

test('the query image with the API key, and the heatmap toggle', async () => {
  const client = fakeClient();
  await renderWith(client, <ResultsView result={match} />);
  const query = screen.getByTestId('query-image');
  expect(query.props.source).toEqual({
    uri: `http://gateway.test${match.image_url}`,
    headers: { 'X-API-Key': 'k' },
  });
  expect(screen.queryByTestId('heatmap-image')).toBeNull();

  const toggle = screen.getByRole('switch', { name: 'Show heatmap' });
  expect(toggle).not.toBeChecked();
  await fireEvent.press(toggle);
  expect(screen.getByRole('switch', { name: 'Show heatmap' })).toBeChecked();
  expect(screen.getByTestId('heatmap-image').props.source.uri).toBe(`http://gateway.test${match.heatmap_url}`);
  expect(screen.queryByTestId('query-image')).toBeNull();
  await fireEvent.press(toggle);
  expect(screen.getByTestId('query-image')).toBeTruthy();
});

test('no heatmap stored: no toggle', async () => {
  await renderWith(fakeClient(), <ResultsView result={{ ...match, heatmap_url: null }} />);
  expect(screen.queryByRole('switch')).toBeNull();
});

test('each card: rank, name, thumbnail, similarity and confidence in words', async () => {
  await renderWith(fakeClient(), <ResultsView result={match} />);
  expect(screen.getAllByTestId(/^result-/)).toHaveLength(5);
  expect(screen.getByText('Similarity 0.84')).toBeTruthy();
  expect(screen.getByLabelText('Likely the same person, confidence 95 percent')).toBeTruthy();
  expect(screen.getByLabelText('Photo of Person 7205').props.source.uri).toBe(
    `http://gateway.test${match.matches[0].thumbnail_url}`,
  );
});

test('feedback: sent for that person, confirmed, and the other button stays available', async () => {
  const client = fakeClient();
  const call = deferred<void>();
  client.sendFeedback.mockReturnValue(call.promise);
  await renderWith(client, <ResultsView result={match} />);
  await fireEvent.press(screen.getByRole('button', { name: 'Person 7205 is the right person' }));
  expect(client.sendFeedback).toHaveBeenCalledWith(match.search_id, {
    person_id: match.matches[0].person_id,
    correct: true,
  });
  expect(screen.getByText('Sending feedback…')).toBeTruthy();
  await act(async () => call.resolve());
  expect(screen.getByText('Thanks: marked as the right person')).toBeTruthy();
  const chosen = screen.getByRole('button', { name: 'Person 7205 is the right person' });
  expect(chosen).toBeSelected();
  const other = screen.getByRole('button', { name: 'Person 7205 is not this person' });
  expect(other).not.toBeSelected();
  expect(other).toBeEnabled();
});

test('feedback that fails says so on that card', async () => {
  const client = fakeClient();
  client.sendFeedback.mockRejectedValue(new ApiError('network_error', 'x'));
  await renderWith(client, <ResultsView result={match} />);
  await fireEvent.press(screen.getByRole('button', { name: 'Person 7219 is not this person' }));
  expect(await screen.findByText('Feedback not sent: No connection to the gateway')).toBeTruthy();
});

test('a reopened search shows the feedback already given', async () => {
  const stored = fromSearch(body<{ search: Search }>('search_200').search);
  await renderWith(fakeClient(), <ResultsView result={stored} />);
  const first = stored.matches[0].name!;
  expect(screen.getByRole('button', { name: `${first} is the right person` })).toBeSelected();
  expect(screen.getByText('Thanks: marked as the right person')).toBeTruthy();
});

test('a deleted person is shown as such', async () => {
  const deleted = { ...match.matches[0], name: null, thumbnail_url: null, deleted: true };
  await renderWith(fakeClient(), <ResultsView result={{ ...match, matches: [deleted] }} />);
  expect(screen.getByText('1. Deleted person')).toBeTruthy();
});

test('confidence words: calibrated bands, and the threshold when uncalibrated', () => {
  expect(CONFIDENCE_WORDS[confidenceLevel(0.95, 0.8, 0.83)]).toBe('Likely the same person');
  expect(CONFIDENCE_WORDS[confidenceLevel(0.6, 0.4, 0.83)]).toBe('Possible');
  expect(CONFIDENCE_WORDS[confidenceLevel(0.2, 0.2, 0.83)]).toBe('Unlikely');
  expect(confidenceLevel(null, 0.9, 0.83)).toBe('possible');
  expect(confidenceLevel(null, 0.5, 0.83)).toBe('unlikely');
  expect(confidenceLevel(null, 0.9, null)).toBe('unlikely');
});
