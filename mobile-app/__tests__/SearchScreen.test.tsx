import { act, fireEvent, screen } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import type { MatchResponse } from '../src/api/types';
import { pickPhotos } from '../src/components/pickPhotos';
import { SearchScreen } from '../src/screens/SearchScreen';
import { deferred, fakeClient, renderWith } from '../test-utils/app';
import { calibrated } from '../test-utils/decisions';
import { body } from '../test-utils/http';

jest.mock('../src/components/pickPhotos', () => ({ pickPhotos: jest.fn() }));
const pick = pickPhotos as jest.Mock;
const photo = { uri: 'file:///q.jpg', name: 'q.jpg', type: 'image/jpeg' };

beforeEach(() => {
  pick.mockReset();
  pick.mockResolvedValue({ kind: 'picked', photos: [photo] });
});

async function choosePhotoAndSearch(client: ReturnType<typeof fakeClient>) {
  await renderWith(client, <SearchScreen />);
  await fireEvent.press(screen.getByRole('button', { name: 'Choose a photo from the library' }));
  expect(pick).toHaveBeenCalledWith('library');
  expect(screen.getByLabelText('The chosen photo')).toBeTruthy();
  await fireEvent.press(screen.getByRole('button', { name: 'Search for this face' }));
}

test('uploading shows progress and a cancel button, then the ranked results', async () => {
  const client = fakeClient();
  const call = deferred<MatchResponse>();
  client.match.mockReturnValue(call.promise);
  await choosePhotoAndSearch(client);

  expect(client.match).toHaveBeenCalledWith(photo, 5, expect.objectContaining({ signal: expect.anything() }));
  expect(screen.getByText('Uploading… 0%')).toBeTruthy();
  const onProgress = client.match.mock.calls[0][2].onProgress as (p: number) => void;
  await act(async () => onProgress(0.5));
  expect(screen.getByText('Uploading… 50%')).toBeTruthy();
  await act(async () => onProgress(1));
  expect(screen.getByText('Searching the gallery…')).toBeTruthy();
  expect(screen.getByRole('button', { name: 'Cancel the upload' })).toBeTruthy();

  const answer = calibrated([0.97, 0.62, 0.3, 0.05, 0.01]);
  await act(async () => call.resolve(answer));
  expect(screen.getByText('Top 5 people')).toBeTruthy();
  expect(screen.getByText(`1. ${answer.matches[0].name}`)).toBeTruthy();
  expect(screen.getByText('Likely the person · 97%')).toBeTruthy();
  expect(screen.getByText(`2. ${answer.matches[1].name}`)).toBeTruthy();
  expect(screen.getByText('Possible match · 62%')).toBeTruthy();
  expect(screen.getAllByText('Not a reliable match')).toHaveLength(3);
  expect(screen.queryByTestId('no-match')).toBeNull();
  expect(screen.queryByText(/Uploading/)).toBeNull();
});

test('the chosen k is sent', async () => {
  const client = fakeClient();
  client.match.mockResolvedValue(body('match_200'));
  await renderWith(client, <SearchScreen />);
  await fireEvent.press(screen.getByRole('button', { name: 'Choose a photo from the library' }));
  expect(screen.queryByRole('button', { name: 'Show the top 10 people' })).toBeNull(); // a search key: at most 5
  await fireEvent.press(screen.getByRole('button', { name: 'Show the top 3 people' }));
  await fireEvent.press(screen.getByRole('button', { name: 'Search for this face' }));
  expect(client.match.mock.calls[0][1]).toBe(3);
});

test('no reliable match is said plainly', async () => {
  const client = fakeClient();
  client.match.mockResolvedValue(body('match_200_no_match'));
  await choosePhotoAndSearch(client);
  expect(await screen.findByText('No reliable match')).toBeTruthy();
  // a search key is shown nobody when nothing matches (the gateway sends no candidates)
  expect(screen.queryByText('Closest people — not a match')).toBeNull();
  expect(screen.queryByTestId('result-1')).toBeNull();
  expect(screen.queryByText(/Possible|Likely|%/)).toBeNull();
});

test('cancel aborts the upload and says nothing was searched', async () => {
  const client = fakeClient();
  client.match.mockImplementation(
    (_p, _k, options: { signal: AbortSignal }) =>
      new Promise((_, reject) =>
        options.signal.addEventListener('abort', () => reject(new ApiError('cancelled', 'cancelled'))),
      ),
  );
  await choosePhotoAndSearch(client);
  await fireEvent.press(screen.getByRole('button', { name: 'Cancel the upload' }));
  expect(await screen.findByText('Upload cancelled')).toBeTruthy();
  expect(screen.getByText('Nothing was searched.')).toBeTruthy();
});

test('a network failure gives a clear message and a retry that searches again', async () => {
  const client = fakeClient();
  client.match
    .mockRejectedValueOnce(new ApiError('network_error', 'unreachable'))
    .mockResolvedValueOnce(body('match_200'));
  await choosePhotoAndSearch(client);
  expect(await screen.findByText('No connection to the gateway')).toBeTruthy();
  await fireEvent.press(screen.getByRole('button', { name: 'Try again' }));
  expect(await screen.findByText('1. Person 7205')).toBeTruthy();
  expect(client.match).toHaveBeenCalledTimes(2);
  expect(client.match.mock.calls[1][0]).toBe(photo);
});

test('no face in the photo: advice, and no pointless retry button', async () => {
  const client = fakeClient();
  client.match.mockRejectedValue(new ApiError('no_face_found', 'no face was found in the image', 422));
  await choosePhotoAndSearch(client);
  expect(await screen.findByText('No face found in this photo')).toBeTruthy();
  expect(screen.queryByRole('button', { name: 'Try again' })).toBeNull();
});

test('a key that used its quota: said plainly, with the gateway\'s reason, and no retry button', async () => {
  const client = fakeClient();
  const message = 'this API key has made its 200 searches for today';
  client.match.mockRejectedValue(new ApiError('quota_exceeded', message, 429));
  await choosePhotoAndSearch(client);
  expect(await screen.findByText('This key has used its quota')).toBeTruthy();
  expect(screen.getByText(new RegExp(message))).toBeTruthy();
  expect(screen.queryByRole('button', { name: 'Try again' })).toBeNull();
});

test('camera permission refused: explained, nothing uploaded', async () => {
  const client = fakeClient();
  pick.mockResolvedValue({ kind: 'denied' });
  await renderWith(client, <SearchScreen />);
  await fireEvent.press(screen.getByRole('button', { name: 'Take a photo with the camera' }));
  expect(screen.getByText(/Camera access is off/)).toBeTruthy();
  expect(screen.queryByRole('button', { name: 'Search for this face' })).toBeNull();
});

test('without settings the search explains what to do', async () => {
  await renderWith(null, <SearchScreen />);
  await fireEvent.press(screen.getByRole('button', { name: 'Choose a photo from the library' }));
  await fireEvent.press(screen.getByRole('button', { name: 'Search for this face' }));
  expect(await screen.findByText('The app is not set up yet')).toBeTruthy();
});
